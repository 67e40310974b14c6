"""Kubernetes source: list+watch with the official ``kubernetes`` client.

Not implemented yet (see the Kubernetes issue).  It will report the same
:class:`translators.objects.ConfigObject` batches to the
:class:`xds_server.store.ConfigStore` as the file source does.
"""
