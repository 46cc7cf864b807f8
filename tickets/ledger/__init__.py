"""The ledger (rules 6, 7, 8, 11, 19): datacenter visits billed by cause, module installs and reinstalls,
out-of-scope work and packages, fines and payments, in exact integer rials, with monthly statements."""
