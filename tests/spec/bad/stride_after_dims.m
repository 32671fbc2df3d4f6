Network n {
  Layer L {
    Type: CONV
    Dimensions { K: 4, C: 1, R: 3, S: 3, Y: 8, X: 8 }
    Stride { X: 2, Y: 2 }
    Dataflow {
      SpatialMap(1,1) K;
    }
  }
}
