// Vector exp for the SIMD kernels (see simd/README.md for the V interface).
#pragma once

namespace tessera::kernels::simd {

// exp(x) with x clamped to [−87, 88]: exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n ln 2
// (ln 2 split in a high and a low part so that r is exact to f32), and exp(r) on |r| <= ln2/2 by
// its degree-6 minimax polynomial (Cephes expf coefficients); about 1 ulp in this range.
// Below −87 the true result is < 1.7e−38 and the clamp gives ~1.6e−38; SiLU and softmax only
// ever add it to something of order 1.
template <class V>
typename V::Reg Exp(typename V::Reg x) {
  x = V::Max(V::Set1(-87.0f), x);
  x = V::Min(V::Set1(88.0f), x);
  const auto n = V::Round(V::Mul(x, V::Set1(1.44269504088896341f)));
  auto r = V::Fma(n, V::Set1(-0.693359375f), x);
  r = V::Fma(n, V::Set1(2.12194440e-4f), r);
  auto poly = V::Set1(1.9875691500e-4f);
  poly = V::Fma(poly, r, V::Set1(1.3981999507e-3f));
  poly = V::Fma(poly, r, V::Set1(8.3334519073e-3f));
  poly = V::Fma(poly, r, V::Set1(4.1665795894e-2f));
  poly = V::Fma(poly, r, V::Set1(1.6666665459e-1f));
  poly = V::Fma(poly, r, V::Set1(5.0000001201e-1f));
  poly = V::Fma(poly, V::Mul(r, r), V::Add(r, V::Set1(1.0f)));
  return V::Mul(poly, V::Pow2(n));
}

}  // namespace tessera::kernels::simd
