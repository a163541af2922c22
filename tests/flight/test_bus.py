from flight.bus import ALL, Bus


def test_subscribers_get_their_topic_and_wildcards_get_everything() -> None:
    bus = Bus()
    one, every = [], []
    bus.subscribe("power.batt_v", lambda t, m: one.append(m))
    bus.subscribe(ALL, lambda t, m: every.append((t, m)))
    bus.publish("power.batt_v", 30.1)
    bus.publish("thermal.structure_temp_c", 20.0)
    assert one == [30.1]
    assert every == [("power.batt_v", 30.1), ("thermal.structure_temp_c", 20.0)]
    assert bus.published == 2
