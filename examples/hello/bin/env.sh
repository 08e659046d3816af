#!/bin/sh
# Prints the snap's environment, one VARIABLE=value per line, then its arguments.
for v in SNAP SNAP_DATA SNAP_COMMON SNAP_NAME SNAP_INSTANCE_NAME SNAP_REVISION SNAP_VERSION SNAP_ARCH; do
    eval "echo $v=\$$v"
done
echo "args=$*"
