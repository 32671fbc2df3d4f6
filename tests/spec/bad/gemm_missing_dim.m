Network n {
  Layer G {
    Type: GEMM
    Dimensions { M: 4, K: 8 }
    Dataflow { SpatialMap(1,1) M; }
  }
}
