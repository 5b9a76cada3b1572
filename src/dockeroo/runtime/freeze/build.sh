#!/bin/sh
# Build the freeze binaries shipped as package data:
#   freeze-x86_64   (gcc,                     or $CC_X86_64)
#   freeze-aarch64  (aarch64-linux-gnu-gcc,   or $CC_AARCH64)
#
#   src/dockeroo/runtime/freeze/build.sh            # both
#   src/dockeroo/runtime/freeze/build.sh aarch64    # just one
#
# On Debian/Ubuntu: apt-get install gcc gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
# (on an aarch64 host, swap: gcc builds aarch64, x86_64-linux-gnu-gcc x86_64).
# No libc is linked: freeze.c makes raw system calls.  The binaries are
# committed; rebuild them after changing freeze.c.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
host=$(uname -m)

CFLAGS="-Os -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector
 -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-pie -no-pie
 -ffunction-sections -fdata-sections -Wall -Wextra -Werror
 -Wl,--gc-sections,-z,norelro,-z,noexecstack,--build-id=none,-z,noseparate-code,-s"

compiler() {
	case "$1" in
	x86_64)  var=${CC_X86_64:-}; cross=x86_64-linux-gnu-gcc ;;
	aarch64) var=${CC_AARCH64:-}; cross=aarch64-linux-gnu-gcc ;;
	*) echo "build.sh: unknown architecture $1 (x86_64, aarch64)" >&2; exit 2 ;;
	esac
	if [ -n "$var" ]; then echo "$var"
	elif [ "$host" = "$1" ]; then echo "${CC:-gcc}"
	else echo "$cross"
	fi
}

strip_for() {
	cc=$1
	case "$cc" in
	*-gcc) echo "${cc%gcc}strip" ;;
	*) echo strip ;;
	esac
}

for arch in ${*:-x86_64 aarch64}; do
	cc=$(compiler "$arch")
	out="$here/freeze-$arch"
	# shellcheck disable=SC2086
	"$cc" $CFLAGS -o "$out.tmp" "$here/freeze.c"
	"$(strip_for "$cc")" --strip-all -R .comment -R .note.gnu.property "$out.tmp" 2>/dev/null \
		|| strip --strip-all "$out.tmp"
	chmod 0755 "$out.tmp"
	mv "$out.tmp" "$out"
	echo "$out: $(wc -c < "$out") bytes"
done
