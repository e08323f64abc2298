//! Gryff shared registers (in progress).
