"""The PUS services of the space link, one component each (flight.pus.service gives
their shape)."""
