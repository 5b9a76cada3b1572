"""One module per recipe; each defines ``Recipe`` and ``uninstall``.

Loading any of them (buildout's install and uninstall entry points) first
checks that zc.buildout is a version dockeroo supports: an older one gets
one ``Error:`` line naming both versions before anything is created.
"""

from dockeroo.model.buildout import check_supported

check_supported()
