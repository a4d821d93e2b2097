"""The mirror's web page: what a browser sees at ``/`` and ``/ui/...``.

- :mod:`.catalog`: the verified state of the mirror turned into plain data (built by the
  monitor process, :mod:`tiup.server.monitor`, written as JSON to the server's state
  directory);
- :mod:`.view`: a worker's read-only view of that data, reloaded when it changes;
- :mod:`.render`: HTML pages from the view (no template engine, everything escaped);
- :mod:`.assets`: the one style sheet and the one script (no external assets);
- :mod:`.routes`: the HTTP side (who gets HTML, caching headers, 404s).
"""
