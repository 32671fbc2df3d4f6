Constant A 4;
Layer L {
  Type: CONV
}
