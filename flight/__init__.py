"""The flight software. It sees hardware only through `hal` interfaces and time only
through `hal.clock.Clock`; it never imports drivers, the sim or the ground."""
