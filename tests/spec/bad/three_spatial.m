Network n {
  Layer L {
    Type: CONV
    Dimensions { K: 4, C: 4, R: 1, S: 1, Y: 1, X: 8 }
    Dataflow {
      SpatialMap(1,1) K;
      SpatialMap(1,1) C;
      SpatialMap(1,1) X;
    }
  }
}
