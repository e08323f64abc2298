//! The shared log and Tango objects (in progress).
