Network n {
  Layer Lÿ {
