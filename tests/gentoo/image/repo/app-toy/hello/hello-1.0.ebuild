# Copyright dockeroo developers
# Distributed under the terms of the Apache License 2.0

EAPI=8

DESCRIPTION="dockeroo test package: a USE flag and a runtime dependency"
HOMEPAGE="https://github.com/dockeroo/dockeroo"
SRC_URI=""
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64 arm64"
IUSE="extra"
RDEPEND="app-toy/greeting"
S="${WORKDIR}"

src_install() {
	cat > "${T}/hello" <<-EOT || die
	#!/bin/sh
	echo "${P}: \$(cat /usr/share/greeting/message)"
	EOT
	dobin "${T}/hello"
	if use extra; then
		echo "installed because USE=extra" > "${T}/extra" || die
		insinto /usr/share/hello
		doins "${T}/extra"
	fi
}
