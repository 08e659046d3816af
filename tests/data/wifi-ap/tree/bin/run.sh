#!/bin/sh
# Runs one of the snap's Debian programs (usr/sbin/NAME) with the snap's own dynamic loader and
# libraries: the ELF files name /lib's loader, which need not match the base's.
set -eu
name="$1"
shift
t=aarch64-linux-gnu
exec "$SNAP/lib/$t/ld-linux-aarch64.so.1" --library-path "$SNAP/lib/$t" "$SNAP/usr/sbin/$name" "$@"
