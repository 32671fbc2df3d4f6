Network n {
  Layer P1 {
    Type: POOL
    Dimensions { K: 4, C: 4, R: 2, S: 2, Y: 8, X: 8 }
  }
}
