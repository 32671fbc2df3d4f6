Network n {
  Dataflow { SpatialMap(1,1) K; }
}
