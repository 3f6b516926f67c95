"""Pure functions of the model: resolution, the rmi/prune planner, listing, usage."""
