"""The demo: a whole hall on one machine (``hallq demo``), and the simulated hall day it runs.

- :mod:`.model`: the pure model of a hall day (arrivals, priorities, service times, no-shows, transfers,
  ratings), seeded;
- :mod:`.simulate`: that day played in virtual time against a dispatch policy (for the benchmarks);
- :mod:`.corepolicy`: the controller's pure core as such a policy;
- :mod:`.hall`: the simulation's view of a hall config;
- :mod:`.hallsim`: the simulated hall over MQTT (kiosks, clerks, rating pads as contract clients);
- :mod:`.view`: the live terminal view (rich), driven by the retained topics;
- :mod:`.broker`: the embedded MQTT broker (amqtt, ``hallq broker``) the demo runs when no broker is given;
- :mod:`.cli`: ``hallq demo``.

A workspace member of its own (``hallq-demo``), so a hall's controller image does not install the demo,
rich or amqtt.
"""
