"""Search: populations, selection, archive, the generational engine."""
