# Copyright dockeroo developers
# Distributed under the terms of the Apache License 2.0

EAPI=8

inherit toy

DESCRIPTION="dockeroo test package tool (stable)"
HOMEPAGE="https://github.com/dockeroo/dockeroo"
SRC_URI=""
LICENSE="MIT"
SLOT="0"
S="${WORKDIR}"
KEYWORDS="amd64 arm64"
