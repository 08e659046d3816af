#!/bin/sh
# Records each start (seconds since 1970) in $SNAP_COMMON/starts, then idles.
date +%s >>"$SNAP_COMMON/starts"
exec sleep infinity
