Network n {
  Layer L {
    Type: CONV
    Dataflow { SpatialMap(1,1) K; }
  }
}
