"""Call displays and window callers: everything a call makes visible and audible, and the clerk's buttons."""
