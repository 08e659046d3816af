#!/bin/sh
# probe ADDRESS PORT: from inside the access point's namespace, connects to ADDRESS:PORT over
# the radio and prints the first line the server sends (an SSH server's banner).
set -eu
(sleep 8) | ip netns exec ap "$SNAP/bin/busybox" nc -w 8 "$1" "$2" | head -n 1
