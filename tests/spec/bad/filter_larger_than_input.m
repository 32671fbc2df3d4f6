Network n {
  Layer L {
    Type: CONV
    Dimensions { K: 4, C: 1, R: 5, S: 3, Y: 4, X: 8 }
    Dataflow { SpatialMap(1,1) K; }
  }
}
