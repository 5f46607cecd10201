//! The conformance kit on the system backend.
use lmem_system::System;

lmem_backend::conformance_tests!(System::new());
