Network n {
  Layer L {
    Type: CONV
    Dimensions { K: 4, C: 4, R: 1, S: 1, Y: 1, X: 8 }
    Dataflow {
      TemporalMap(1,1) K;
      TemporalMap(1,1) C;
    }
  }
}
