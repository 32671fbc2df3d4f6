Network n {
  Layer L {
    Type: CONV
    Dimensions { K: 16, C: 1, R: 1, S: 1, Y: 1, X: 8 }
    Dataflow {
      SpatialMap(2,3) K;
    }
  }
}
