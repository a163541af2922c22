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


def test_a_subscriber_that_joins_later_gets_the_next_messages_in_order() -> None:
    bus = Bus()
    seen: list[tuple[str, str, int]] = []
    bus.subscribe("*", lambda t, m: seen.append(("all", t, m)))
    bus.publish("a", 1)  # the route to "a" is made here
    bus.subscribe("a", lambda t, m: seen.append(("a", t, m)))
    bus.publish("a", 2)
    bus.subscribe("*", lambda t, m: seen.append(("all2", t, m)))
    bus.publish("a", 3)
    assert seen == [("all", "a", 1), ("a", "a", 2), ("all", "a", 2),
                    ("a", "a", 3), ("all", "a", 3), ("all2", "a", 3)]
