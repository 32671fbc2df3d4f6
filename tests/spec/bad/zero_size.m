Network n {
  Layer L {
    Type: CONV
    Dimensions { K: 4, C: 1, R: 1, S: 1, Y: 1, X: 8 }
    Dataflow {
      SpatialMap(1,1) K;
      TemporalMap(0,1) X;
    }
  }
}
