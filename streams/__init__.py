"""Faust stream processing: session state, live gauges, windowed rates and payment alerts."""
