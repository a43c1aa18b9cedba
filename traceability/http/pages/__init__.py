"""The web pages, by audience: the consumer page behind every QR code, the regulator console, the vendor page.

Every page renders on the server and reads without JavaScript; each has a JSON twin, the same data
from the same service call, at the same URL with ``?format=json`` (or ``Accept: application/json``).

==============  ======================================================================================
``consumer``    ``/``, ``/t``, ``/t/{code}``: the lookup and the page a receipt's QR code opens
``console``     ``/console/...``: the regulator console (``console_work``: traces as lists, the key data
                element export, triage, stalls' credit; ``console_recalls``: a recall's
                preview, confirmation and page; ``console_federation``: witnessing the other members, split views)
``vendor``      ``/vendor/...``: a stall's receiving and selling from a phone, and its receipt
``public``      ``/public``: recalls, failed tests and credit grades for everyone, the Atom feed, open data
``kiosk``       ``/kiosk``: a market's query terminal (keypad, barcode gun, verdict first, QR to a phone)
``render``      :func:`~.render.answer` (the page or its JSON twin), templates, static files, formats
``sessions``    session cookies, CSRF tokens, the same-origin check, the sign-in form
``qr``          the receipt's inline SVG QR code
==============  ======================================================================================

To add a page: a view model in :mod:`traceability.services.views` (plain JSON-ready data), a handler on
its audience's ``routes`` that ends in ``answer(request, data, template, context)``, a template under
``web/templates/`` whose words come from the catalogue (``t('site')``), and a test of both answers.
"""

from __future__ import annotations

from aiohttp import web

from traceability import i18n
from traceability.http.pages import console, consumer, kiosk, public, render, vendor
from traceability.http.pages import console_federation as _console_federation  # noqa: F401 - adds its routes to console's
from traceability.http.pages import console_recalls as _console_recalls  # noqa: F401 - adds its routes to console's
from traceability.http.pages import console_work as _console_work  # noqa: F401 - adds its routes to console's


def setup(app: web.Application) -> None:
    """Register the page routes, the templates and the static files on ``app``."""
    for audience in (consumer, console, vendor, public, kiosk):
        app.add_routes(audience.routes.table)
    render.setup(app)
    for lang in i18n.LANGS:  # read the catalogues now, not on the first request
        i18n.words(lang)
