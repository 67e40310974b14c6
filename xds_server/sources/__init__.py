"""Config sources: they turn the outside world into :class:`translators.objects.ConfigObject` batches."""
