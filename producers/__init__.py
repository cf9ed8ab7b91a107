"""Everything that puts events into livemetrics: the gateway, the server SDK, the tracker, the simulator."""
