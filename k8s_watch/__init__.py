"""Kubernetes source: list+watch with the official ``kubernetes`` client.

* :mod:`k8s_watch.kinds` -- the kinds we watch and the API versions we accept;
* :mod:`k8s_watch.reflector` -- one list+watch loop per kind (and namespace):
  list, then watch from the list's resourceVersion with bookmarks; on
  ``410 Gone`` relist and diff so deletions are seen; on a dropped or silent
  stream reconnect with jittered backoff; a kind whose CRD is not installed is
  skipped with one log line;
* :mod:`k8s_watch.source` -- feeds the :class:`xds_server.store.ConfigStore`
  with the same :class:`translators.objects.ConfigObject` values the file
  source produces, and reports readiness once every kind has listed.

The official client is synchronous, so each reflector runs in its own daemon
thread and hands events to the asyncio loop with ``call_soon_threadsafe``:
a blocked watch never blocks the ADS server.
"""
