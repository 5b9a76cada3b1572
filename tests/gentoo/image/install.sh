#!/bin/sh
# Makes the dockeroo test builder inside a Debian minbase image (run by the
# Dockerfile next to this file; see tests/gentoo/builder.py).
#
#   install.sh PORTAGE_VERSION
#
# 1. Portage from its PyPI sdist, installed system-wide in the layout of its
#    meson build (placeholders substituted by hand).
# 2. The toy ebuild repository (repo/) as /var/db/repos/toy, its hand-made
#    profile, and the builder's own /etc/portage.
# 3. The builder contract of docker.gentoo-build: a target root
#    /usr/<processor>-dockeroo-linux-gnu/ with its own etc/portage and the
#    chroot-<arch>-docker script that enters it.
set -eu

VERSION=$1
BUILD=/tmp/build
SITE=/usr/lib/python3/dist-packages

machine=$(uname -m)
case "$machine" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) echo "install.sh: no toy profile for $machine" >&2; exit 1 ;;
esac
triple=$machine-dockeroo-linux-gnu
TARGET=/usr/$triple

# -- 1. Portage ---------------------------------------------------------------------
src=/tmp/portage-src
mkdir -p "$src"
tar -xzf "$BUILD/portage-$VERSION.tar.gz" -C "$src" --strip-components=1
cd "$src"
sed -i 's/@INSTALL_TYPE@/SYSTEM/' lib/portage/installation.py
sed -i "s/@VERSION@/$VERSION/" lib/portage/__init__.py
sed -i -e 's|@PORTAGE_BASE_PATH@|/usr/lib/portage|' \
       -e 's|@PORTAGE_BIN_PATH@|/usr/lib/portage/bin|' \
       -e 's|@EPREFIX@||' lib/portage/const.py
sed -i 's/@DYN_DEPS_DEFAULT@/y/' lib/_emerge/create_depgraph_params.py
sed -i 's/@IPC@/True/' lib/_emerge/AbstractEbuildProcess.py
if grep -rn -E '"@(INSTALL_TYPE|VERSION|PORTAGE_BASE_PATH|PORTAGE_BIN_PATH|EPREFIX|DYN_DEPS_DEFAULT|IPC)@"' lib; then
    echo "install.sh: placeholders left in the sdist" >&2
    exit 1
fi
find lib bin cnf -name meson.build -delete
cp -R lib/portage lib/_emerge "$SITE/"
mkdir -p /usr/lib/portage /usr/share/portage
cp -R bin /usr/lib/portage/bin
for cmd in ebuild egencache emerge emirrordist glsa-check gpkg-sign portageq quickpkg emerge-webrsync; do
    mv "/usr/lib/portage/bin/$cmd" /usr/bin/
done
for cmd in archive-conf dispatch-conf emaint env-update fixpackages regenworld etc-update; do
    mv "/usr/lib/portage/bin/$cmd" /usr/sbin/
done
cp -R cnf /usr/share/portage/config
cp cnf/etc-update.conf cnf/dispatch-conf.conf /etc/
# the shipped repos.conf names a [gentoo] repository that is not here
printf '[DEFAULT]\nmain-repo = toy\n' > /usr/share/portage/config/repos.conf
ln -sf python3 /usr/bin/python
python3 -m compileall -q "$SITE/portage" "$SITE/_emerge" /usr/lib/portage/bin >/dev/null
cd /
rm -rf "$src"

echo 'portage:x:250:250:portage:/var/lib/portage/home:/bin/false' >> /etc/passwd
echo 'portage:x:250:' >> /etc/group
echo 'portage:!:19000::::::' >> /etc/shadow
mkdir -p /var/lib/portage/home /var/cache/distfiles /var/cache/binpkgs /var/db/repos

# -- 2. the toy repository and the builder's own configuration -----------------
cp -R "$BUILD/repo" /var/db/repos/toy
sed -i -e "s/@ARCH@/$arch/g" -e "s/@CHOST@/$machine-pc-linux-gnu/g" \
    /var/db/repos/toy/profiles/default/make.defaults

write_config() {  # write_config ETC_PORTAGE CHOST
    mkdir -p "$1/repos.conf"
    sed -e "s/@CHOST@/$2/g" "$BUILD/make.conf" > "$1/make.conf"
    printf '[toy]\nlocation = /var/db/repos/toy\n' > "$1/repos.conf/toy.conf"
    ln -sfn /var/db/repos/toy/profiles/default "$1/make.profile"
}
write_config /etc/portage "$machine-pc-linux-gnu"
egencache --update --repo=toy --jobs=2

# -- 3. the target root and the chroot script -----------------------------------
# The target root shares the builder's programs (hard links: no extra space)
# and has its own /etc, /var and etc/portage.
mkdir -p "$TARGET/usr"
for entry in /usr/*; do
    [ "$entry" = "$TARGET" ] || cp -al "$entry" "$TARGET/usr/"
done
for top in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$top" ]; then
        ln -s "$(readlink "/$top")" "$TARGET/$top"
    elif [ -d "/$top" ]; then
        cp -al "/$top" "$TARGET/$top"
    fi
done
cp -a /etc "$TARGET/etc"
rm -rf "$TARGET/etc/portage"
write_config "$TARGET/etc/portage" "$triple"
mkdir -p "$TARGET/dev" "$TARGET/proc" "$TARGET/sys" "$TARGET/run" "$TARGET/root" \
    "$TARGET/var/db/pkg" "$TARGET/var/db/repos/toy" "$TARGET/var/cache/binpkgs" \
    "$TARGET/var/cache/distfiles" "$TARGET/var/lib/portage/home" "$TARGET/var/log" \
    "$TARGET/tmp" "$TARGET/var/tmp" "$TARGET/dockeroo-root"
chmod 1777 "$TARGET/tmp" "$TARGET/var/tmp"
touch "$TARGET/dockeroo-root/.keep"

sed -e "s|@TARGET@|$TARGET|g" "$BUILD/chroot-docker" > "/usr/local/bin/chroot-$machine-docker"
chmod 755 "/usr/local/bin/chroot-$machine-docker"
echo "install.sh: builder ready: $TARGET, chroot-$machine-docker, Portage $(portageq --version 2>/dev/null || echo "$VERSION")"
