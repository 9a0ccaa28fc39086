// x86 SIMD intrinsics for the hand-written kernels (each has a scalar fallback).
#pragma once
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own undefined
// pass-through operands (GCC bug 105593, fixed in GCC 13); nothing here is uninitialised.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
