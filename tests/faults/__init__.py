"""Fault injection: the dialer's promises under killed workers, a lost Redis, Twilio API
errors, lost/duplicated/reordered callbacks and hostile webhook input (docs/RELIABILITY.md)."""
