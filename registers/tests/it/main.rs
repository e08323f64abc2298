//! Integration tests of the register machine on a tiny deterministic
//! network: hand-made interleavings and randomised delivery orders.

mod interleavings;
mod net;
mod props;
