"""Stream processing, by role (docs/architecture.md, "Pure core, thin shells"):

* the pure core: streams/core/ (the plans of the normalize and track stages, records, outputs),
  streams/domain/ (the status lattice and the channel's rules) and streams/adapters/ (one per
  provider), which import no I/O framework and are given the time instead of reading the clock;
* the Faust repairs: streams/faust_ext/, installed on the app by `streams.faust_ext.install`;
* the stage wiring: the modules at this level (app, topology, agents, views, normalize loop and
  process, lag, positions, replay, ...), which run the core on Faust and Kafka.
"""
