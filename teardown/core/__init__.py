"""Pure core: model, planner, rules, phases. Stdlib only, no I/O, no clock."""
