//! The simulator library (work in progress: agents, checks and the runner land next).
