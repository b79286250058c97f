class StaleEditError(Exception):
    """The record changed since the form (or file) that edits it was read."""

    def __init__(self, current):
        self.current = current
        super().__init__(
            f"{current._meta.verbose_name.capitalize()} “{current}” was changed by someone else "
            "since you opened it. Nothing was saved; the form now shows the current values."
        )
