//! `natbox-config`: builds, shows and checks natbox metadata disks (in progress).

fn main() {}
