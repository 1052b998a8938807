"""Entry point for plain mitmproxy: ``mitmdump -s seks/addon/script.py``.

Options: ``--set seks_home=DIR`` (default $SEKS_HOME or ~/.seks), ``--set seks_config=FILE``.
mitmproxy loads scripts at the position of its script loader, ahead of ``save``, ``tlsconfig``
and the dumper, so the fake token is back in the flow before anything saves or prints it. The
destination re-check runs there too, before ``map_remote``: do not combine SEKS with
``map_remote``/``modify_headers`` under mitmdump (``seks proxy`` orders its addons itself).
"""

from seks.addon.flow import DestinationGuard, SeksAddon
from seks.addon.responses import ResponseScrubber

_seks = SeksAddon()
addons = [_seks, ResponseScrubber(_seks), DestinationGuard(_seks)]
