"""Contracts every layer shares: interfaces, wire formats and transports.

`hal` imports nothing else of skyrack; everything else may import `hal`.
"""
