Network n {
  Layer FC1 {
    Type: FC
    Dimensions { K: 1000, C: 2048 }
    Dataflow { SpatialMap(1,1) K; }
  }
}
