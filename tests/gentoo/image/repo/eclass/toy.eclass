# Copyright dockeroo developers
# Distributed under the terms of the Apache License 2.0

# @ECLASS: toy.eclass
# @SUPPORTED_EAPIS: 8
# @BLURB: installs /usr/bin/${PN} (prints ${PN}-${PV}) and /usr/share/toy/${PN}

toy_src_install() {
	printf '#!/bin/sh\necho %s-%s\n' "${PN}" "${PV}" > "${T}/${PN}" || die
	dobin "${T}/${PN}"
	printf '%s\n' "${PV}" > "${T}/version" || die
	insinto /usr/share/toy
	newins "${T}/version" "${PN}"
}

EXPORT_FUNCTIONS src_install
