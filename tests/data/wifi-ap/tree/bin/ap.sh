#!/bin/sh
# The access point: two mac80211_hwsim radios, the last one moved into the network namespace
# "ap" with hostapd (WPA2-PSK, $AP_SSID/$AP_PASSPHRASE) and udhcpd ($AP_ADDRESS/24) on it; the
# first radio stays with the OS for its station.
set -eu
run="$SNAP/bin/run.sh"
state=/run/wifi-ap
mkdir -p "$state"
modprobe mac80211_hwsim radios=2
i=0
while [ "$(ls /sys/class/ieee80211 | wc -l)" -lt 2 ]; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || { echo "wifi-ap: mac80211_hwsim made no two radios" >&2; exit 1; }
    sleep 0.1
done
phy="$(ls /sys/class/ieee80211 | sort -V | tail -n 1)"
[ -e /run/netns/ap ] || ip netns add ap
"$run" iw phy "$phy" set netns name ap
iface=""
i=0
while [ -z "$iface" ]; do
    iface="$(ip -n ap -o link show | sed -n 's/^[0-9]*: \([^:@ ]*\).*/\1/p' | grep -v '^lo$' | head -n 1)"
    i=$((i + 1))
    [ -n "$iface" ] || [ "$i" -lt 100 ] || { echo "wifi-ap: no interface in namespace ap" >&2; exit 1; }
    [ -n "$iface" ] || sleep 0.1
done
ip -n ap link set lo up
ip -n ap addr add "$AP_ADDRESS/24" dev "$iface"
ip -n ap link set "$iface" up
echo "wifi-ap: $phy ($iface) in namespace ap, SSID $AP_SSID, $AP_ADDRESS/24"
net="${AP_ADDRESS%.*}"
cat >"$state/udhcpd.conf" <<CONF
interface $iface
start $net.100
end $net.150
lease_file $state/udhcpd.leases
pidfile $state/udhcpd.pid
option subnet 255.255.255.0
CONF
: >"$state/udhcpd.leases"
cat >"$state/hostapd.conf" <<CONF
interface=$iface
driver=nl80211
ssid=$AP_SSID
hw_mode=g
channel=6
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=$AP_PASSPHRASE
ctrl_interface=$state/hostapd
CONF
ip netns exec ap "$SNAP/bin/busybox" udhcpd -f "$state/udhcpd.conf" &
exec ip netns exec ap "$run" hostapd "$state/hostapd.conf"
