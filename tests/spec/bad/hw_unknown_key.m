num_pes: 64
l1_size: 512
