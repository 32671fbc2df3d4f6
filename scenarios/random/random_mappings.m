// 24 random valid CONV mappings (seed 2026; 24 drawn), written by
// scenarios/random/generate.py: each passes the spec's checks and, executed by
// the simulator on 16 PEs, performs every MAC of its layer exactly once.
Network random {
Layer R01 {
  Type: CONV
  Dimensions { K: 3, C: 4, R: 3, S: 3, Y: 3, X: 6 }
  Dataflow {
    SpatialMap(3,1) Y;
    TemporalMap(1,1) C;
    TemporalMap(6,4) X;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(2,2) K;
    Cluster(2,P);
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(3,1) Y;
    SpatialMap(6,4) X;
    TemporalMap(1,1) K;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(3,3) C;
  }
}
Layer R02 {
  Type: CONV
  Stride { X: 2, Y: 2 }
  Dimensions { K: 4, C: 3, R: 3, S: 3, Y: 4, X: 5 }
  Dataflow {
    TemporalMap(3,2) X;
    SpatialMap(3,3) K;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(3,3) C;
    TemporalMap(3,2) Y;
    TemporalMap(Sz(S),Sz(S)) S;
  }
}
Layer R03 {
  Type: CONV
  Dimensions { K: 2, C: 4, R: 1, S: 1, Y: 6, X: 3 }
  Dataflow {
    TemporalMap(5,5) Y;
    TemporalMap(2,2) K;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(2,2) X;
    TemporalMap(Sz(R),Sz(R)) R;
    SpatialMap(1,1) C;
  }
}
Layer R04 {
  Type: CONV
  Dimensions { K: 4, C: 4, R: 1, S: 1, Y: 9, X: 1 }
  Dataflow {
    SpatialMap(1,1) C;
    TemporalMap(3,3) K;
    TemporalMap(1,1) X;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(4,4) Y;
    TemporalMap(Sz(S),Sz(S)) S;
  }
}
Layer R05 {
  Type: CONV
  Dimensions { K: 2, C: 2, R: 1, S: 1, Y: 7, X: 9 }
  Dataflow {
    TemporalMap(2,2) K;
    TemporalMap(5,5) X;
    TemporalMap(2,2) C;
    SpatialMap(4,4) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
  }
}
Layer R06 {
  Type: CONV
  Dimensions { K: 7, C: 1, R: 3, S: 3, Y: 3, X: 10 }
  Dataflow {
    TemporalMap(1,1) C;
    TemporalMap(3,1) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(3,3) K;
    SpatialMap(3,1) X;
  }
}
Layer R07 {
  Type: CONV
  Stride { X: 2, Y: 2 }
  Dimensions { K: 3, C: 3, R: 1, S: 1, Y: 7, X: 7 }
  Dataflow {
    TemporalMap(Sz(S),Sz(S)) S;
    SpatialMap(5,6) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(7,8) X;
    TemporalMap(3,3) C;
    TemporalMap(3,3) K;
  }
}
Layer R08 {
  Type: CONV
  Dimensions { K: 1, C: 1, R: 1, S: 1, Y: 3, X: 9 }
  Dataflow {
    SpatialMap(1,1) C;
    TemporalMap(1,1) K;
    TemporalMap(1,1) Y;
    TemporalMap(4,4) X;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
  }
}
Layer R09 {
  Type: CONV
  Dimensions { K: 5, C: 4, R: 1, S: 1, Y: 6, X: 6 }
  Dataflow {
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(1,1) C;
    TemporalMap(5,5) Y;
    TemporalMap(3,3) K;
    SpatialMap(4,4) X;
  }
}
Layer R10 {
  Type: CONV
  Stride { X: 2, Y: 2 }
  Dimensions { K: 2, C: 7, R: 1, S: 3, Y: 6, X: 9 }
  Dataflow {
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(3,4) Y;
    TemporalMap(1,1) K;
    TemporalMap(6,6) C;
    TemporalMap(Sz(S),Sz(S)) S;
    SpatialMap(5,4) X;
  }
}
Layer R11 {
  Type: CONV
  Dimensions { K: 8, C: 3, R: 1, S: 1, Y: 1, X: 6 }
  Dataflow {
    TemporalMap(2,2) C;
    TemporalMap(2,2) X;
    SpatialMap(1,1) Y;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(3,3) K;
    Cluster(2,P);
    TemporalMap(8,8) K;
    TemporalMap(3,3) C;
    TemporalMap(1,1) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    SpatialMap(5,5) X;
    TemporalMap(Sz(S),Sz(S)) S;
  }
}
Layer R12 {
  Type: CONV
  Stride { X: 2, Y: 2 }
  Dimensions { K: 3, C: 1, R: 1, S: 1, Y: 2, X: 5 }
  Dataflow {
    TemporalMap(Sz(R),Sz(R)) R;
    SpatialMap(1,2) Y;
    TemporalMap(5,6) X;
    TemporalMap(1,1) C;
    TemporalMap(3,3) K;
    TemporalMap(Sz(S),Sz(S)) S;
  }
}
Layer R13 {
  Type: CONV
  Dimensions { K: 4, C: 6, R: 3, S: 1, Y: 9, X: 7 }
  Dataflow {
    TemporalMap(3,3) K;
    TemporalMap(4,4) C;
    SpatialMap(3,3) X;
    TemporalMap(3,1) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
    Cluster(2,P);
    TemporalMap(Sz(S),Sz(S)) S;
    SpatialMap(1,1) C;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(8,6) Y;
    TemporalMap(2,2) K;
    TemporalMap(1,1) X;
  }
}
Layer R14 {
  Type: CONV
  Dimensions { K: 5, C: 3, R: 3, S: 3, Y: 5, X: 9 }
  Dataflow {
    TemporalMap(3,1) X;
    TemporalMap(1,1) K;
    TemporalMap(2,2) C;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
    SpatialMap(5,3) Y;
  }
}
Layer R15 {
  Type: CONV
  Dimensions { K: 4, C: 7, R: 1, S: 1, Y: 3, X: 4 }
  Dataflow {
    SpatialMap(1,1) K;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(5,5) C;
    TemporalMap(2,2) Y;
    TemporalMap(2,2) X;
    Cluster(2,P);
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(1,1) Y;
    SpatialMap(7,7) C;
    TemporalMap(4,4) X;
    TemporalMap(2,2) K;
  }
}
Layer R16 {
  Type: CONV
  Dimensions { K: 4, C: 6, R: 1, S: 3, Y: 2, X: 9 }
  Dataflow {
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(2,2) Y;
    TemporalMap(3,3) C;
    TemporalMap(8,6) X;
    SpatialMap(3,3) K;
    TemporalMap(Sz(R),Sz(R)) R;
  }
}
Layer R17 {
  Type: CONV
  Dimensions { K: 2, C: 8, R: 1, S: 1, Y: 5, X: 1 }
  Dataflow {
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(1,1) X;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(1,1) K;
    SpatialMap(4,4) C;
    TemporalMap(5,5) Y;
    Cluster(4,P);
    TemporalMap(1,1) X;
    TemporalMap(2,2) K;
    TemporalMap(Sz(R),Sz(R)) R;
    SpatialMap(1,1) C;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(2,2) Y;
  }
}
Layer R18 {
  Type: CONV
  Dimensions { K: 7, C: 5, R: 3, S: 3, Y: 3, X: 6 }
  Dataflow {
    TemporalMap(4,2) X;
    TemporalMap(3,1) Y;
    TemporalMap(3,3) C;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(Sz(R),Sz(R)) R;
    SpatialMap(2,2) K;
  }
}
Layer R19 {
  Type: CONV
  Dimensions { K: 3, C: 3, R: 1, S: 1, Y: 3, X: 4 }
  Dataflow {
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(2,2) C;
    TemporalMap(2,2) Y;
    SpatialMap(2,2) X;
    TemporalMap(1,1) K;
  }
}
Layer R20 {
  Type: CONV
  Dimensions { K: 3, C: 5, R: 3, S: 3, Y: 8, X: 3 }
  Dataflow {
    TemporalMap(1,1) K;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(4,2) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(5,5) C;
    SpatialMap(3,1) X;
  }
}
Layer R21 {
  Type: CONV
  Dimensions { K: 3, C: 4, R: 3, S: 3, Y: 5, X: 9 }
  Dataflow {
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(1,1) K;
    TemporalMap(4,4) C;
    SpatialMap(5,3) Y;
    TemporalMap(9,7) X;
    TemporalMap(Sz(S),Sz(S)) S;
  }
}
Layer R22 {
  Type: CONV
  Dimensions { K: 1, C: 4, R: 3, S: 3, Y: 5, X: 3 }
  Dataflow {
    SpatialMap(3,1) X;
    TemporalMap(1,1) K;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(3,1) Y;
    TemporalMap(1,1) C;
    TemporalMap(Sz(R),Sz(R)) R;
  }
}
Layer R23 {
  Type: CONV
  Dimensions { K: 1, C: 8, R: 3, S: 1, Y: 7, X: 9 }
  Dataflow {
    SpatialMap(4,4) C;
    TemporalMap(1,1) K;
    TemporalMap(8,8) X;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(4,2) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    Cluster(3,P);
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(5,5) C;
    SpatialMap(1,1) X;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(3,1) Y;
    TemporalMap(1,1) K;
  }
}
Layer R24 {
  Type: CONV
  Stride { X: 2, Y: 2 }
  Dimensions { K: 6, C: 1, R: 1, S: 3, Y: 4, X: 8 }
  Dataflow {
    SpatialMap(3,4) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(5,4) X;
    TemporalMap(1,1) C;
    TemporalMap(3,3) K;
    Cluster(4,P);
    TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(3,4) Y;
    SpatialMap(1,1) C;
    TemporalMap(7,6) X;
    TemporalMap(5,5) K;
    TemporalMap(Sz(R),Sz(R)) R;
  }
}
}
